"""The map in docs/survey.md ("Counting orthomosaics in a GIS"): a GeoTIFF, the animals the CLI wrote as GeoJSON,
and the site polygons, drawn in the raster's CRS.

    python scripts/geo_map.py RASTER.tif ANIMALS.geojson [--sites SITES.geojson] [--out docs/geo-map.png]

Reads the raster decimated (an overview-sized read through rasterio, never the whole raster), carries the
GeoJSON's lon/lat points and the sites (in the CRS their file declares) into the raster's CRS, and colours each
animal by class as the app's overlay does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))


def render(raster: Path, animals: Path, sites: Path | None, out: Path, max_side: int = 1600) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio
    import shapely
    from pyproj import Transformer

    from detector.classes import class_color
    from detector.geo.sites import load_sites

    with rasterio.open(raster) as src:
        factor = max(1, int(np.ceil(max(src.width, src.height) / max_side)))
        shape = (src.count, src.height // factor, src.width // factor)
        pixels = np.moveaxis(src.read(out_shape=shape)[:3], 0, -1)
        left, bottom, right, top = src.bounds
        crs = src.crs
    figure, axes = plt.subplots(figsize=(10, 10 * pixels.shape[0] / pixels.shape[1] + 0.6), dpi=80)
    axes.imshow(pixels, extent=(left, right, bottom, top))
    collection = json.loads(animals.read_text())
    to_raster = Transformer.from_crs("OGC:CRS84", crs, always_xy=True)
    names = sorted({f["properties"]["class"] for f in collection["features"]})
    order = ("adult_males", "subadult_males", "adult_females", "juveniles", "pups")
    names = [n for n in order if n in names] + [n for n in names if n not in order]
    for index, name in enumerate(names):
        lonlat = np.array(
            [f["geometry"]["coordinates"] for f in collection["features"] if f["properties"]["class"] == name]
        )
        x, y = to_raster.transform(lonlat[:, 0], lonlat[:, 1])
        colour = np.array(class_color(name, order.index(name) if name in order else index)) / 255
        axes.scatter(x, y, s=28, color=colour, edgecolor="white", linewidth=0.6, label=f"{name} ({len(x)})")
    if sites is not None:
        polygons = load_sites(sites)
        to_map = Transformer.from_crs(polygons.crs, crs, always_xy=True).transform
        for name, polygon in zip(polygons.names, polygons.polygons, strict=True):
            shape_in_map = shapely.transform(polygon, lambda xy: np.column_stack(to_map(xy[:, 0], xy[:, 1])))
            for part in getattr(shape_in_map, "geoms", [shape_in_map]):
                xs, ys = part.exterior.xy
                axes.plot(xs, ys, color="yellow", linewidth=2)
            centre = shape_in_map.representative_point()
            axes.annotate(name, (centre.x, centre.y), color="yellow", fontsize=12, ha="center", weight="bold")
    axes.set_xlim(left, right)
    axes.set_ylim(bottom, top)
    axes.set_xlabel(f"easting (m), {crs.to_string()}")
    axes.set_ylabel("northing (m)")
    axes.ticklabel_format(useOffset=False, style="plain")
    axes.legend(loc="lower left", fontsize=9, framealpha=0.85)
    axes.set_title(f"{raster.name}: {len(collection['features'])} animals as GeoJSON points, sites outlined")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raster", type=Path)
    parser.add_argument("animals", type=Path, help="the GeoJSON sealion-count --out wrote")
    parser.add_argument("--sites", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "geo-map.png")
    args = parser.parse_args()
    print(render(args.raster, args.animals, args.sites, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
