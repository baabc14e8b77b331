// AudioWorklet: the microphone's channels averaged to mono, posted in blocks of `blockSeconds`
// with their RMS level, so the page sends a frame every ~100 ms and draws its level meter.
class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = Math.max(128, Math.round(sampleRate * options.processorOptions.blockSeconds));
    this.block = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels.length === 0) return true;
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      let sum = 0;
      for (const channel of channels) sum += channel[i];
      this.block[this.filled++] = sum / channels.length;
      if (this.filled === this.size) this.post();
    }
    return true;
  }

  post() {
    let energy = 0;
    for (const value of this.block) energy += value * value;
    const samples = this.block;
    this.port.postMessage({ samples, rms: Math.sqrt(energy / samples.length) }, [samples.buffer]);
    this.block = new Float32Array(this.size);
    this.filled = 0;
  }
}

registerProcessor("capture", Capture);
