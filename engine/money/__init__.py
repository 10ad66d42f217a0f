"""Money as the venue booked it: positions closed in pieces (books.py), fees settled from the
venue's own fills (fees.py), funding accrued to open positions (funding.py)."""
