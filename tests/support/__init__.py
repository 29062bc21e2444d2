"""Helpers the tests share, one module per need; fixtures stay in the conftests."""
