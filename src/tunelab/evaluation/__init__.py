"""tunelab.evaluation"""
