"""Sea lion counter web app: ``python app.py [--share] [--port N] ...`` (installed: ``sealion-app``).

The app lives in :mod:`sealion_app` (``ui`` builds the Blocks, ``main`` parses the options and serves); this file
is the entry point a Hugging Face Space and a checkout run. Endpoints: docs/app.md.
"""

import sys

from sealion_app.main import main

if __name__ == "__main__":
    sys.exit(main())
