"""TensorProto <-> numpy, for the request path and the client.

`tf.make_ndarray` / `tf.make_tensor_proto` handle every case TensorFlow knows and cost
tens of microseconds per tensor in Python; a recommendation answer has a dozen small
tensors, so the server converts them here instead: numbers through `tensor_content` (one
bytes copy), strings through `string_val`. Reading accepts both encodings, as TF Serving
and its clients may send either.

Example:
    >>> proto = to_proto(np.array([[b"a", b"b"]], dtype=object))
    >>> to_array(proto).tolist()
    [[b'a', b'b']]
"""

from __future__ import annotations

import math

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

# dtype enum -> (numpy dtype, the TensorProto field its values go in when not in tensor_content)
_NUMERIC: dict[int, tuple[np.dtype, str]] = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    types_pb2.DT_INT32: (np.dtype(np.int32), "int_val"),
    types_pb2.DT_INT64: (np.dtype(np.int64), "int64_val"),
    types_pb2.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
}
_DTYPE_OF = {numpy_dtype: dtype for dtype, (numpy_dtype, _) in _NUMERIC.items()}


def dtype_name(dtype: int) -> str:
    """`DT_STRING` -> `string`, as error messages say it; a value the enum does not define says so."""
    try:
        return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()
    except ValueError:  # a client may send any int32 in the enum's field
        return f"an undefined dtype ({dtype})"


def shape_of(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    return tuple(dim.size for dim in proto.tensor_shape.dim)


def to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """A TensorProto as a numpy array (strings as an object array of bytes).

    Raises ValueError for a dtype this service does not use, or when the number of values
    does not match the shape (TensorFlow would repeat the last value; a client that sends
    fewer values than its shape says has a bug worth hearing about).
    """
    shape = shape_of(proto)
    if proto.dtype == types_pb2.DT_STRING:
        values = np.array(proto.string_val, dtype=object)
    elif proto.dtype in _NUMERIC:
        numpy_dtype, field = _NUMERIC[proto.dtype]
        if proto.tensor_content:
            values = np.frombuffer(proto.tensor_content, dtype=numpy_dtype)
        else:
            values = np.asarray(getattr(proto, field), dtype=numpy_dtype)
    else:
        raise ValueError(f"unsupported dtype {dtype_name(proto.dtype)}")
    if any(size < 0 for size in shape) or values.size != math.prod(shape):
        raise ValueError(f"shape {list(shape)} does not match its {values.size} values")
    return values.reshape(shape)


def fill_proto(proto: tensor_pb2.TensorProto, array: np.ndarray) -> None:
    """Writes `array` into an empty TensorProto (e.g. a response's map entry, in place)."""
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size
    if array.dtype.kind == "U":
        array = np.char.encode(array, "utf-8")
    if array.dtype.kind in "OS":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(array.ravel().tolist())
    else:
        proto.dtype = _DTYPE_OF[array.dtype]
        proto.tensor_content = np.ascontiguousarray(array).tobytes()


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto()
    fill_proto(proto, array)
    return proto
