"""Rendering: rich tables for people (stderr/stdout), one versioned JSON envelope for machines."""
