"""One router per area of the API; `webapp/api/api.py` mounts them under /api/v1/."""
