"""The rules: typed facts in, decisions out.  Pure: nothing here reaches the store or SQLAlchemy."""
