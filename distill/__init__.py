"""raptor.distill"""
