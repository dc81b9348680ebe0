"""tunelab.reporting"""
