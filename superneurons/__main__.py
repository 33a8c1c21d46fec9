import sys

from superneurons.cli import main

sys.exit(main())
