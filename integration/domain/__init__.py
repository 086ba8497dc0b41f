"""The domain: facts, decisions, change events, field and CRM names.

The single source of these names; imports nothing else of ours.
"""
