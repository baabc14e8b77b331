"""Detection: long recordings and live streams to timestamped events, and how good they are.

``activity`` finds where sound rises above the background, ``detector`` labels it with the model
as audio streams in, ``files`` runs it over recordings and writes/reads event tables, ``metrics``
scores events the DCASE way. NumPy and soundfile only: ONNX models detect without torch.
"""

from hearai.detect.detector import DetectConfig, Event, StreamingDetector, WindowScorer
from hearai.detect.files import Detection, detect_file, evaluate, read_ground_truth, write_events

__all__ = ["DetectConfig", "Detection", "Event", "StreamingDetector", "WindowScorer", "detect_file", "evaluate",
           "read_ground_truth", "write_events"]
