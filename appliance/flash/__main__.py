"""`python -m appliance.flash`: the flasher without the rest of the appliance (Python 3.9 too)."""

from appliance.flash.cli import main

if __name__ == "__main__":
    main()
