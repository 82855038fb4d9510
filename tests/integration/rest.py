"""Helpers for REST integration tests.

error = error_of(response, 404, "not_found")   # the shared error shape, checked
"""

from __future__ import annotations


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["retry"] is False
    assert isinstance(error["message"], str) and error["message"]
    return error
