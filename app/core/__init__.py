"""The pure-Python core: stream engine, auth session, model, history store. No Qt here."""
