"""raptor.hil"""
