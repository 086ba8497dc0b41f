"""Reports: the figures leaders read and the explanation of one decision."""
