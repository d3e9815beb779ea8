"""The operator's routes: each tenant's policy, and the audit log."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1/operator", tags=["operator"])
