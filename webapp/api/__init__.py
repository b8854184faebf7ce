"""The versioned JSON API (/api/v1/): personal API tokens, auth, errors, and one router per area."""
