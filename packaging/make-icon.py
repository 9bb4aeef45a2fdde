"""Draws resources/icons/gdsim.png (256x256): a bowl-shaped loss curve with a ball rolling down.

    .venv/bin/python packaging/make-icon.py

Drawn in code (Pillow, 4x supersampled) so the icon can be changed by editing numbers.
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE, SS = 256, 4
OUT = Path(__file__).resolve().parent.parent / "resources" / "icons" / "gdsim.png"


def main() -> None:
    n = SIZE * SS
    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((8 * SS, 8 * SS, n - 8 * SS, n - 8 * SS), radius=44 * SS, fill="#16181d")

    # the bowl: low in the middle, rising to the sides; filled beneath with a blue gradient
    c, bottom, rim, half = n / 2, n * 0.74, n * 0.24, n * 0.36
    xs = [c - half + i * 2 * half / 200 for i in range(201)]
    curve = [(x, bottom - (bottom - rim) * ((x - c) / half) ** 2) for x in xs]
    floor = n * 0.84
    for x, y in curve:  # the ground under the curve, darker with depth
        for row in range(int(y), int(floor), 4):
            t = (row - rim) / (floor - rim)
            color = (int(40 + 20 * t), int(110 - 50 * t), int(200 - 70 * t), 255)
            d.rectangle((x - 2 * half / 200, row, x + 2 * half / 200, row + 4), fill=color)
    w = 5 * SS
    for i in range(len(curve) * 4):  # a smooth thick stroke: overlapping dots along the curve
        x = c - half + i * 2 * half / (len(curve) * 4)
        y = bottom - (bottom - rim) * ((x - c) / half) ** 2
        d.ellipse((x - w, y - w, x + w, y + w), fill="#e8eaed")

    # a ball on the left slope, a dotted trail of earlier steps above it
    def on_curve(x: float) -> float:
        return min(curve, key=lambda p: abs(p[0] - x))[1]

    for i, x in enumerate((n * 0.20, n * 0.25, n * 0.305)):
        r = (5 + 2 * i) * SS
        y = on_curve(x) - 14 * SS
        d.ellipse((x - r, y - r, x + r, y + r), fill=(230, 25, 75, 110 + 50 * i))
    bx = n * 0.37
    by = on_curve(bx) - 24 * SS
    r = 22 * SS
    d.ellipse((bx - r, by - r, bx + r, by + r), fill="#e6194b", outline="#ffffff", width=4 * SS)
    d.ellipse((bx - r * 0.45, by - r * 0.55, bx - r * 0.05, by - r * 0.15), fill="#ff8fa8")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.resize((SIZE, SIZE), Image.LANCZOS).save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
