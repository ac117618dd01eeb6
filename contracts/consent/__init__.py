"""Contract terms, migrations and the decisions recorded in the consent ledger.

`services` holds the writes (accepting terms, proposing and deciding migrations, the system actions
of the beat), `selectors` the reads the pages and the API share, `api` the REST endpoints.
"""
