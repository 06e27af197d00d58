"""Page sizes of every list: what the views page by and what the "Per page" boxes offer."""

PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
