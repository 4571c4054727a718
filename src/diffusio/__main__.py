import sys

from diffusio.cli.main import main

sys.exit(main())
