"""`python -m appliance.image`: image customization without the rest of the appliance (Python 3.9 too)."""

from appliance.image.cli import main

if __name__ == "__main__":
    main()
