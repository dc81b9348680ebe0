"""tunelab.models"""
