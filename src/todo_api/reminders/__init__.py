"""Reminders: when each todo's reminders fire (`reminder_fires`), and the window a notification
worker polls (`GET /api/reminders`)."""
