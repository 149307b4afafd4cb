"""Encryption of sensitive data at rest (envelope encryption, docs/operations.md).

- :mod:`~idgraph.encryption.datakey`: the data key an operator configures, the
  key-encryption key (KEK) that wraps every data-encryption key (DEK);
- :mod:`~idgraph.encryption.keyring`: the DEKs, one per identity node, wrapped by the
  data key, in a file outside the store (so erasing a node's DEK shreds its values in
  every copy of the store, backups included);
- :mod:`~idgraph.encryption.sealing`: trait values and interaction properties sealed
  with their node's DEK (AES-256-GCM), bound to where they belong;
- :mod:`idgraph.store.encrypted`: the store decorator that seals on write and opens on
  read.
"""
