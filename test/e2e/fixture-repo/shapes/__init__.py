"""Plane shapes and reports about them."""

from .geometry import Circle, Rectangle, Square

__all__ = ["Circle", "Rectangle", "Square"]
