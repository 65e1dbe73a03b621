"""dodo-transform: run Dodo Payments webhook transformations and deliver them to Segment."""

__version__ = "0.1.0"
