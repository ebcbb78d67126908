"""``crm.get_customer``: a read, no approval."""

from __future__ import annotations

from typing import Any

from adapters import http
from adapters.crm import client
from adapters.crm.schemas import GetCustomerArgs, UserSearch
from adapters.registry import Context


def get_customer(args: GetCustomerArgs, ctx: Context) -> dict[str, Any]:
    response = client.call("GET", "users/search.json", params={"query": f"email:{args.email}"})
    return http.parse(UserSearch, response, client.DOWNSTREAM).as_customers()
