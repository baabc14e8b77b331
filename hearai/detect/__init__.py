"""Detection: long recordings and live streams to timestamped events, and how good they are.

``buffer`` holds a stream's audio, ``activity`` finds where sound rises above the background,
``detector`` decides when a classifier scores it, ``tracks`` turns scores into events, ``frames``
turns a detector's frame scores into events on a short context (``decisions``, the rule it decides
by; ``patterns``, alarms heard by their rhythm), ``timeline`` records scores for plots, ``files``
runs it over recordings (and says what one holds, alarm patterns included) and writes/reads event tables,
``metrics`` scores events the DCASE way, ``measured`` states what the shipped detectors measured.
NumPy and soundfile only: ONNX models detect without torch.
"""

from hearai.detect.config import DetectConfig, judged
from hearai.detect.detector import StreamingDetector, start_detector
from hearai.detect.files import Detection, detect_file, evaluate, predict_file, read_ground_truth, write_events
from hearai.detect.frames import FrameDetector
from hearai.detect.tracks import Event

__all__ = ["DetectConfig", "Detection", "Event", "FrameDetector", "StreamingDetector", "detect_file", "evaluate",
           "judged", "predict_file", "read_ground_truth", "start_detector", "write_events"]
