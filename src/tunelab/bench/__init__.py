"""tunelab.bench"""
