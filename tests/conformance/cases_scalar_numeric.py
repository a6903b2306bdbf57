"""Numeric functions: Druid's ``querying/sql-scalar.md#numeric-functions``, with the examples
and answers of ``querying/sql-functions.md``. A documented example over Druid's example data
(``flight-carriers``, ``taxi-trips``) is written over the value it shows (``ABS("ArrDelay")``
with ``-27`` is ``ABS(-27)``). The docs print a DOUBLE that is a whole number without ``.0``
(``SQRT(25)`` shows ``5``); Druid's JSON answer is ``5.0``, which is what the cases hold.

Over the fixtures, ``numfoo``'s ``d1`` is ``[1.0, 1.7, 0.0]`` then nulls, ``l1`` ``[7, 325323,
0]`` then nulls, ``l2`` ``[null, 325323, 0]`` then nulls; ``m1``/``m2`` are 1 to 6."""

from tests.conformance.framework import SAME, Page, column, scalar

PAGE = Page("querying/sql-scalar.md#numeric-functions", "Scalar functions: numeric")

_NULL3 = [None, None, None]

CASES = [
    # ---- documented examples (sql-functions.md)
    scalar("ABS", "ABS(-27)", 27, native="abs(-27)", duckdb=SAME),
    scalar("ACOS", "ACOS(0)", 1.5707963267948966, native="acos(0)", duckdb=SAME),
    scalar("ASIN", "ASIN(1)", 1.5707963267948966, native="asin(1)", duckdb=SAME),
    scalar("ATAN", "ATAN(1)", 0.7853981633974483, native="atan(1)", duckdb=SAME),
    scalar("ATAN2", "ATAN2(1, -1)", 2.356194490192345, native="atan2(1, -1)", duckdb=SAME),
    scalar(
        "BITWISE_AND",
        "BITWISE_AND(12, 10)",
        8,
        native="bitwiseAnd(12, 10)",
        duckdb="SELECT 12 & 10",
    ),
    scalar(
        "BITWISE_COMPLEMENT",
        "BITWISE_COMPLEMENT(12)",
        -13,
        native="bitwiseComplement(12)",
        duckdb="SELECT ~12",
    ),
    scalar(
        "BITWISE_CONVERT_DOUBLE_TO_LONG_BITS",
        "BITWISE_CONVERT_DOUBLE_TO_LONG_BITS(255)",
        4643176031446892544,
        native="bitwiseConvertDoubleToLongBits(255)",
    ),
    scalar(
        "BITWISE_CONVERT_LONG_BITS_TO_DOUBLE",
        "BITWISE_CONVERT_LONG_BITS_TO_DOUBLE(4643176031446892544)",
        255.0,
        native="bitwiseConvertLongBitsToDouble(4643176031446892544)",
    ),
    scalar(
        "BITWISE_OR", "BITWISE_OR(12, 10)", 14, native="bitwiseOr(12, 10)", duckdb="SELECT 12 | 10"
    ),
    scalar(
        "BITWISE_SHIFT_LEFT",
        "BITWISE_SHIFT_LEFT(2, 3)",
        16,
        native="bitwiseShiftLeft(2, 3)",
        duckdb="SELECT 2 << 3",
    ),
    scalar(
        "BITWISE_SHIFT_RIGHT",
        "BITWISE_SHIFT_RIGHT(16, 3)",
        2,
        native="bitwiseShiftRight(16, 3)",
        duckdb="SELECT 16 >> 3",
    ),
    scalar(
        "BITWISE_XOR",
        "BITWISE_XOR(12, 10)",
        6,
        native="bitwiseXor(12, 10)",
        duckdb="SELECT xor(12, 10)",
    ),
    scalar("CEIL", "CEIL(21.25)", 22.0, native="ceil(21.25)", duckdb="SELECT CEIL(21.25::DOUBLE)"),
    scalar(
        "COS",
        "COS(PI / 3)",
        0.5000000000000001,
        native="cos(pi() / 3)",
        duckdb="SELECT COS(PI() / 3)",
    ),
    scalar(
        "COT",
        "COT(PI / 3)",
        0.577350269189626,
        native="cot(pi() / 3)",
        duckdb="SELECT COT(PI() / 3)",
    ),
    scalar(
        "DEGREES", "DEGREES(PI)", 180.0, native="toDegrees(pi())", duckdb="SELECT DEGREES(PI())"
    ),
    scalar("DIV", "DIV(78, 10)", 7, native="div(78, 10)", duckdb="SELECT 78 // 10"),
    scalar("EXP", "EXP(1)", 2.7182818284590455, native="exp(1)", duckdb=SAME),
    scalar(
        "FLOOR", "FLOOR(21.25)", 21.0, native="floor(21.25)", duckdb="SELECT FLOOR(21.25::DOUBLE)"
    ),
    scalar(
        "HUMAN_READABLE_BINARY_BYTE_FORMAT",
        "HUMAN_READABLE_BINARY_BYTE_FORMAT(1000000, 2)",
        "976.56 KiB",
        native="human_readable_binary_byte_format(1000000, 2)",
    ),
    # sql-scalar.md: HUMAN_READABLE_BINARY_BYTE_FORMAT(1048576) returns 1.00 MiB
    scalar(
        "HUMAN_READABLE_BINARY_BYTE_FORMAT",
        "HUMAN_READABLE_BINARY_BYTE_FORMAT(1048576)",
        "1.00 MiB",
        native="human_readable_binary_byte_format(1048576)",
    ),
    scalar(
        "HUMAN_READABLE_DECIMAL_BYTE_FORMAT",
        "HUMAN_READABLE_DECIMAL_BYTE_FORMAT(1000000, 2)",
        "1.00 MB",
        native="human_readable_decimal_byte_format(1000000, 2)",
    ),
    # sql-scalar.md's prose says 1.04 MB; Druid's HumanReadableBytes formats 1048576 / 10^6 with
    # Java's "%.2f", which rounds half up: 1.05 MB (Druid's own tests: 1024 is "1.02 KB").
    scalar(
        "HUMAN_READABLE_DECIMAL_BYTE_FORMAT",
        "HUMAN_READABLE_DECIMAL_BYTE_FORMAT(1048576)",
        "1.05 MB",
        native="human_readable_decimal_byte_format(1048576)",
    ),
    scalar(
        "HUMAN_READABLE_DECIMAL_FORMAT",
        "HUMAN_READABLE_DECIMAL_FORMAT(1000000, 2)",
        "1.00 M",
        native="human_readable_decimal_format(1000000, 2)",
    ),
    scalar(
        "HUMAN_READABLE_DECIMAL_FORMAT",
        "HUMAN_READABLE_DECIMAL_FORMAT(1048576)",
        "1.05 M",
        native="human_readable_decimal_format(1048576)",
    ),
    scalar("LN", "LN(76)", 4.330733340286331, native="log(76)", duckdb=SAME),
    scalar("LOG10", "LOG10(76)", 1.8808135922807914, native="log10(76)", duckdb=SAME),
    scalar("MOD", "MOD(78, 10)", 8, native="78 % 10", duckdb=SAME),
    scalar("PI", "PI", 3.141592653589793, native="pi()", duckdb="SELECT PI()"),
    scalar("POWER", "POWER(5, 2)", 25.0, native="pow(5, 2)", duckdb=SAME),
    scalar("RADIANS", "RADIANS(180)", 3.141592653589793, native="toRadians(180)", duckdb=SAME),
    scalar(
        "ROUND",
        "ROUND(-73.9377670288086, 0)",
        -74.0,
        native="round(-73.9377670288086, 0)",
        duckdb="SELECT ROUND(-73.9377670288086::DOUBLE, 0)",
    ),
    scalar("SAFE_DIVIDE", "SAFE_DIVIDE(78, 10)", 7, native="safe_divide(78, 10)"),
    scalar(
        "SIN",
        "SIN(PI / 3)",
        0.8660254037844386,
        native="sin(pi() / 3)",
        duckdb="SELECT SIN(PI() / 3)",
    ),
    scalar("SQRT", "SQRT(25)", 5.0, native="sqrt(25)", duckdb=SAME),
    scalar(
        "TAN",
        "TAN(PI / 3)",
        1.7320508075688767,
        native="tan(pi() / 3)",
        duckdb="SELECT TAN(PI() / 3)",
    ),
    scalar(
        "TRUNCATE",
        "TRUNCATE(-73.9377670288086, 1)",
        -73.9,
        native="(cast(cast(-73.9377670288086 * 10.0,'long'),'double') / 10.0)",
        duckdb="SELECT TRUNC(-73.9377670288086::DOUBLE, 1)",
    ),
    scalar(
        "TRUNC",
        "TRUNC(21.25)",
        21.0,
        native="(cast(cast(21.25 * 1,'long'),'double') / 1)",
        duckdb="SELECT TRUNC(21.25::DOUBLE)",
    ),
    # ---- over the fixtures: nulls in, nulls out; the native query reads the virtual column
    column("ABS", "ABS(l1)", "numfoo", [7, 325323, 0, *_NULL3], duckdb=SAME),
    column(
        "ACOS",
        "ACOS(d1 / 2)",
        "numfoo",
        [1.0471975511965979, 0.5548110329800715, 1.5707963267948966, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "ASIN",
        "ASIN(d1 / 2)",
        "numfoo",
        [0.5235987755982989, 1.015985293814825, 0.0, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "ATAN",
        "ATAN(d1)",
        "numfoo",
        [0.7853981633974483, 1.039072259536091, 0.0, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "ATAN2",
        "ATAN2(d1, 1)",
        "numfoo",
        [0.7853981633974483, 1.039072259536091, 0.0, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "BITWISE_AND",
        "BITWISE_AND(l1, 3)",
        "numfoo",
        [3, 3, 0, *_NULL3],
        duckdb="SELECT l1 & 3 FROM numfoo",
    ),
    column(
        "BITWISE_OR",
        "BITWISE_OR(l1, 8)",
        "numfoo",
        [15, 325323, 8, *_NULL3],
        duckdb="SELECT l1 | 8 FROM numfoo",
    ),
    column(
        "BITWISE_XOR",
        "BITWISE_XOR(l1, l2)",
        "numfoo",
        [None, 0, 0, *_NULL3],
        duckdb="SELECT xor(l1, l2) FROM numfoo",
    ),
    column(
        "BITWISE_SHIFT_LEFT",
        "BITWISE_SHIFT_LEFT(cnt, 4)",
        "foo",
        [16] * 6,
        duckdb="SELECT cnt << 4 FROM foo",
    ),
    column("CEIL", "CEIL(d1)", "numfoo", [1.0, 2.0, 0.0, *_NULL3], duckdb=SAME),
    column(
        "COS",
        "COS(d1)",
        "numfoo",
        [0.5403023058681398, -0.12884449429552464, 1.0, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "COT",
        "COT(m2)",
        "foo",
        [
            0.6420926159343306,
            -0.45765755436028577,
            -7.015252551434534,
            0.8636911544506167,
            -0.2958129155327455,
            -3.436353004180128,
        ],
        duckdb=SAME,
    ),
    column(
        "DEGREES",
        "DEGREES(d1)",
        "numfoo",
        [57.29577951308232, 97.40282517223994, 0.0, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "DIV", "DIV(l1, 2)", "numfoo", [3, 162661, 0, *_NULL3], duckdb="SELECT l1 // 2 FROM numfoo"
    ),
    column("EXP", "EXP(d2)", "numfoo", [None, 5.4739473917272, 1.0, *_NULL3], duckdb=SAME),
    column("FLOOR", "FLOOR(d1)", "numfoo", [1.0, 1.0, 0.0, *_NULL3], duckdb=SAME),
    column(
        "LN",
        "LN(m2)",
        "foo",
        [
            0.0,
            0.6931471805599453,
            1.0986122886681098,
            1.3862943611198906,
            1.6094379124341003,
            1.791759469228055,
        ],
        duckdb=SAME,
    ),
    column(
        "LOG10",
        "LOG10(m2)",
        "foo",
        [
            0.0,
            0.3010299956639812,
            0.47712125471966244,
            0.6020599913279624,
            0.6989700043360189,
            0.7781512503836436,
        ],
        duckdb=SAME,
    ),
    column("MOD", "MOD(l1, 10)", "numfoo", [7, 3, 0, *_NULL3], duckdb=SAME),
    column("POWER", "POWER(l1, 2)", "numfoo", [49.0, 105835054329.0, 0.0, *_NULL3], duckdb=SAME),
    column(
        "RADIANS",
        "RADIANS(m2)",
        "foo",
        [
            0.017453292519943295,
            0.03490658503988659,
            0.05235987755982989,
            0.06981317007977318,
            0.08726646259971647,
            0.10471975511965978,
        ],
        duckdb=SAME,
    ),
    column("ROUND", "ROUND(d1)", "numfoo", [1.0, 2.0, 0.0, *_NULL3], duckdb=SAME),
    column("ROUND", "ROUND(l1, -2)", "numfoo", [0, 325300, 0, *_NULL3]),
    column("SAFE_DIVIDE", "SAFE_DIVIDE(l1, l2)", "numfoo", [None, 1, None, *_NULL3]),
    column(
        "SIN",
        "SIN(d1)",
        "numfoo",
        [0.8414709848078965, 0.9916648104524686, 0.0, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "SQRT",
        "SQRT(m2)",
        "foo",
        [1.0, 1.4142135623730951, 1.7320508075688772, 2.0, 2.23606797749979, 2.449489742783178],
        duckdb=SAME,
    ),
    column(
        "TAN",
        "TAN(d1)",
        "numfoo",
        [1.5574077246549023, -7.696602139459161, 0.0, *_NULL3],
        duckdb=SAME,
    ),
    column(
        "TRUNCATE",
        "TRUNCATE(d1)",
        "numfoo",
        [1.0, 1.0, 0.0, *_NULL3],
        duckdb="SELECT TRUNC(d1) FROM numfoo",
    ),
    column(
        "TRUNC",
        "TRUNC(m2 / 4, 1)",
        "foo",
        [0.2, 0.5, 0.7, 1.0, 1.2, 1.5],
        duckdb="SELECT TRUNC(m2 / 4, 1) FROM foo",
    ),
]
