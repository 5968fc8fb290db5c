"""Text reports about a list of shapes."""

from .geometry import Circle, Rectangle, Square


def describe(shape):
    """Return a one-line description of a shape."""
    return "%s: area %.2f, perimeter %.2f" % (shape.name, shape.area(), shape.perimeter())


def largest(shapes):
    """Return the shape with the largest area."""
    return max(shapes, key=lambda shape: shape.area())

