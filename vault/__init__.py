"""Vault: envelope encryption of secrets (AES-256-GCM), key ids and rotation.

The public face the gateway uses. The vault is pure crypto plus a rotation routine over an abstract
row source; it never imports ``gateway`` and never stores anything itself.
"""

from vault.envelope import (
    FORMAT_VERSION,
    OVERHEAD_BYTES,
    AssociatedData,
    Keyring,
    KeySource,
    key_id_of,
    open_,
    rewrap,
    seal,
)
from vault.errors import (
    MasterKeyError,
    RotationError,
    TamperedOrMisplaced,
    UnsupportedFormat,
    VaultError,
    WrongKey,
)
from vault.keys import ENV_KEY, ENV_KEY_FILE, MasterKey, generate_key_hex, load_master_key, write_new_key_file
from vault.rotation import (
    CheckReport,
    ProgressCallback,
    RotationReport,
    RowFailure,
    RowSource,
    RowWriter,
    SealedRow,
    check,
    rotate,
    verify_key_against_rows,
)
from vault.sqlite_rotation import SQLiteRowSource, TableSpec

__all__ = [
    "ENV_KEY",
    "ENV_KEY_FILE",
    "FORMAT_VERSION",
    "OVERHEAD_BYTES",
    "AssociatedData",
    "CheckReport",
    "KeySource",
    "Keyring",
    "MasterKey",
    "MasterKeyError",
    "ProgressCallback",
    "RotationError",
    "RotationReport",
    "RowFailure",
    "RowSource",
    "RowWriter",
    "SQLiteRowSource",
    "SealedRow",
    "TableSpec",
    "TamperedOrMisplaced",
    "UnsupportedFormat",
    "VaultError",
    "WrongKey",
    "check",
    "generate_key_hex",
    "key_id_of",
    "load_master_key",
    "open_",
    "rewrap",
    "rotate",
    "seal",
    "verify_key_against_rows",
    "write_new_key_file",
]
