"""tunelab.diagnostics"""
