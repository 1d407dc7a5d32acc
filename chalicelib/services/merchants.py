"""Merchant set-up use cases (the console's, later): binding a scheme-2 merchant with the bank's code."""
from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.domain.bank_code import BankBinding, parse_bank_code
from chalicelib.domain.errors import NotConfigured
from chalicelib.store.directory import Directory
from chalicelib.store.registry import Registry


class MerchantSetup:
    def __init__(self, registry: Registry, directory: Directory) -> None:
        self._registry = registry
        self._directory = directory

    def bind_bank_code(self, merchant_id: str, code: str) -> BankBinding:
        binding = parse_bank_code(code)  # InvalidRequest before anything is written
        try:
            self._registry.set_bank_binding(merchant_id, binding.as_binding())
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                raise NotConfigured("only a scheme-2 merchant can be bound to the bank") from error
            raise
        self._directory.clear_cache()
        return binding
