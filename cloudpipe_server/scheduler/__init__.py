"""Saved jobs and schedules: fire-time computation (`cron`), overlap and catch-up
decisions (`policies`), the firing loop (`loop`) and the business rules (`service`)."""
