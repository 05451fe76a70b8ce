from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Text
from sqlmodel import Field, SQLModel


class RateLimitWindow(SQLModel, table=True):
    """Requests per subject per fixed window, shared by every worker and replica.

    UNLOGGED: counters are cheap to lose in a crash and not worth WAL on every request.
    """

    __tablename__ = "rate_limit_windows"
    __table_args__ = (Index("ix_rate_limit_windows_window_start", "window_start"), {"prefixes": ["UNLOGGED"]})

    subject_key: str = Field(primary_key=True, sa_type=Text)
    window_start: datetime = Field(primary_key=True, sa_type=DateTime(timezone=True))
    count: int = Field(default=0)
