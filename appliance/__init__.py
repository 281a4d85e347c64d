"""Edge replica appliance: a local copy of a production PostgreSQL read replica, with lights."""

# Kept free of imports: appliance.flash must run on a stock Mac's Python 3.9 without the
# Pi-side dependencies, and importing the package runs this file.
__version__ = "0.1.0"
