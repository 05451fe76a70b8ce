"""Planner engines for issue 15: recurrence rules, manual order keys, reminders.

Pure functions and pydantic models, no database and no HTTP: the todos and lists services call them.
Core: never imports todos, lists, users or sync. INTEGRATION.md beside this file is the design for
wiring them into the data layer (columns, tables, indexes, units of work).
"""
