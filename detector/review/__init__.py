"""Reviews: a person's corrections of a count, their file formats and where they are saved."""
