"""Model versions: the manifest of versions the product knows, and resolving one to its files."""
