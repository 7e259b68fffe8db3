"""Hugging Face export (`bolt export`): the SFT set and each online iteration's
preference pairs as dataset folders (Parquet shards), the SFT model and each policy as
model folders, every one with a card generated from the store's manifests; optionally
pushed to the Hub (``bolt.export.push``).

Modules: ``lineage`` chooses what to export, ``cards`` writes the markdown,
``datasets`` and ``models`` write the folders, ``bundle`` does one whole export.
"""
