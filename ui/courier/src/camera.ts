// Camera barcode scanning where the platform has both a camera and the BarcodeDetector API.
// Feature-detected: without either, the camera button is not shown and manual entry remains.

interface DetectedBarcode {
  rawValue: string;
}
interface BarcodeDetectorLike {
  detect(source: CanvasImageSource): Promise<DetectedBarcode[]>;
}
type BarcodeDetectorCtor = new (opts?: { formats?: string[] }) => BarcodeDetectorLike;

function detectorCtor(): BarcodeDetectorCtor | null {
  const ctor = (window as unknown as { BarcodeDetector?: BarcodeDetectorCtor }).BarcodeDetector;
  return ctor ?? null;
}

export async function cameraAvailable(): Promise<boolean> {
  if (!detectorCtor() || !navigator.mediaDevices?.enumerateDevices) return false;
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.some((d) => d.kind === "videoinput");
  } catch {
    return false;
  }
}

/** Shows the camera in `video` until a barcode is seen (resolves with it) or `stop` is called. */
export function scanWithCamera(video: HTMLVideoElement): { result: Promise<string | null>; stop: () => void } {
  let stopped = false;
  let stream: MediaStream | null = null;
  const stop = () => {
    stopped = true;
    stream?.getTracks().forEach((t) => t.stop());
  };
  const result = (async () => {
    const Ctor = detectorCtor();
    if (!Ctor) return null;
    const detector = new Ctor({ formats: ["code_128", "ean_13", "qr_code", "data_matrix"] });
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    await video.play();
    while (!stopped) {
      const found = await detector.detect(video);
      const first = found[0];
      if (first) {
        stop();
        return first.rawValue;
      }
      await new Promise<void>((r) => requestAnimationFrame(() => r()));
    }
    return null;
  })();
  return { result, stop };
}
