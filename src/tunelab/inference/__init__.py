"""tunelab.inference"""
