"""The errors the use cases raise to the web and the CLI.

A use case that could not reach or write the database raises ``StorageError`` (from
``storage.errors``); ``retryable`` says whether the same request may succeed later, so
webhooks answer 503 and providers redeliver. Nothing was half-written either way.
"""

from storage.errors import RetryableStorageError, SchemaNotReadyError, StorageError

__all__ = ["RetryableStorageError", "SchemaNotReadyError", "StorageError"]
