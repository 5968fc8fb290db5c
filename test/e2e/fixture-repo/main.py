from shapes.geometry import Circle, Rectangle, Square
from shapes.report import describe, largest


def main():
    shapes = [Circle(1.0), Rectangle(2.0, 3.0), Square(1.5)]
    for shape in shapes:
        print(describe(shape))
    print("largest:", largest(shapes).name)


if __name__ == "__main__":
    main()
