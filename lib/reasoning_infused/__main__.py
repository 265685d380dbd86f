import sys

from reasoning_infused.cli import main, stop_on_sigterm

stop_on_sigterm()
sys.exit(main())
