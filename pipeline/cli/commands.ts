import type { CommandModule } from 'yargs'

/**
 * Every ktp subcommand, listed explicitly (no folder scanning), in the order of `ktp --help`.
 * Each entry loads its module only when that command runs: the numerical engine (tfjs) and the
 * Arrow stack cost most of a second to import, which every stage of a shell pipe would otherwise
 * pay for commands it does not run. `usage` and `describe` are for the top-level listing.
 */
export interface CommandEntry {
  name: string
  usage: string
  describe: string
  load: () => Promise<CommandModule>
}

export const commands: CommandEntry[] = [
  {
    name: 'run',
    usage: 'run <recipe>',
    describe: 'run a recipe (fsdd or timit) as a DAG of stages, rebuilding only what is stale',
    load: async () => (await import('./run-command.js')).runCommand,
  },
  {
    name: 'sweep',
    usage: 'sweep <recipe>',
    describe: "train a recipe's systems over data fraction, temperature, top-k and optimiser, sharing common steps",
    load: async () => (await import('./sweep-command.js')).sweepCommand,
  },
  {
    name: 'prepare',
    usage: 'prepare <format> <src>',
    describe: 'make Kaldi data dir(s) from a corpus (kaldi, timit, fsdd, tsv)',
    load: async () => (await import('../../stages/prepare/command.js')).prepareCommand,
  },
  {
    name: 'connect-digits',
    usage: 'connect-digits <src>',
    describe: 'build connected-digit utterances (train/dev/test by speaker, true word boundaries) from FSDD',
    load: async () => (await import('../../stages/connect-digits/command.js')).connectDigitsCommand,
  },
  {
    name: 'features',
    usage: 'features <input>',
    describe: 'Kaldi fbank/MFCC features of a data dir or manifest stream',
    load: async () => (await import('../../stages/features/command.js')).featuresCommand,
  },
  {
    name: 'cmvn',
    usage: 'cmvn <action>',
    describe: 'cepstral mean/variance normalisation: compute statistics, apply them',
    load: async () => (await import('../../stages/cmvn/command.js')).cmvnCommand,
  },
  {
    name: 'splice',
    usage: 'splice [input]',
    describe: 'stack each frame with its neighbours (Kaldi splice-feats)',
    load: async () => (await import('../../stages/splice/command.js')).spliceCommand,
  },
  {
    name: 'labels',
    usage: 'labels',
    describe: 'frame-level hard targets from a CTM alignment or Kaldi alignment text',
    load: async () => (await import('../../stages/labels/command.js')).labelsCommand,
  },
  {
    name: 'hmm-init',
    usage: 'hmm-init',
    describe: 'create an HMM model (units, lexicon, silence, transitions) and its pdf inventory',
    load: async () => (await import('../../stages/hmm-init/command.js')).hmmInitCommand,
  },
  {
    name: 'hmm-update',
    usage: 'hmm-update <labels..>',
    describe: 're-estimate priors and transitions of an HMM model from frame labels',
    load: async () => (await import('../../stages/hmm-update/command.js')).hmmUpdateCommand,
  },
  {
    name: 'align',
    usage: 'align [scores]',
    describe: 'frame labels from transcripts: flat start, or Viterbi realignment',
    load: async () => (await import('../../stages/align/command.js')).alignCommand,
  },
  {
    name: 'train-teacher',
    usage: 'train-teacher',
    describe: 'train a DNN teacher, optionally RBM- or discriminatively pre-trained',
    load: async () => (await import('../../stages/train-teacher/command.js')).trainTeacherCommand,
  },
  {
    name: 'train',
    usage: 'train',
    describe: 'train any model config on features + labels (+ soft targets)',
    load: async () => (await import('../../stages/train-model/command.js')).trainCommand,
  },
  {
    name: 'infer',
    usage: 'infer <input>',
    describe: 'run a teacher over features and write soft targets (dense or top-k)',
    load: async () => (await import('../../stages/infer/command.js')).inferCommand,
  },
  {
    name: 'train-student',
    usage: 'train-student',
    describe: 'train a student: baseline, kt, regularise or layerwise-kt',
    load: async () => (await import('../../stages/train-student/command.js')).trainStudentCommand,
  },
  {
    name: 'decode',
    usage: 'decode [scores]',
    describe: 'Viterbi beam search over a word/phone loop with an LM; writes sclite trn',
    load: async () => (await import('../../stages/decode/command.js')).decodeCommand,
  },
  {
    name: 'export',
    usage: 'export',
    describe: 'export a trained model to tfjs-layers, or with --web a static site that recognises speech',
    load: async () => (await import('../../stages/export/command.js')).exportCommand,
  },
  {
    name: 'serve',
    usage: 'serve <site>',
    describe: 'serve a ktp export --web site on localhost (a small static server)',
    load: async () => (await import('./serve-command.js')).serveCommand,
  },
  {
    name: 'score',
    usage: 'score',
    describe: 'score trn hypotheses against references (WER/PER), sclite summary',
    load: async () => (await import('../../stages/score/command.js')).scoreCommand,
  },
  {
    name: 'info',
    usage: 'info <input>',
    describe: 'kind, provenance, counts and dims of a ktp Arrow file or stream',
    load: async () => (await import('../../stages/info/command.js')).infoCommand,
  },
  {
    name: 'cat',
    usage: 'cat <inputs..>',
    describe: 'concatenate, select or shard ktp Arrow files/streams (or print Kaldi text)',
    load: async () => (await import('../../stages/cat/command.js')).catCommand,
  },
  {
    name: 'merge',
    usage: 'merge <inputs..>',
    describe: 'merge --shard i/N parts into one file sorted by utterance id',
    load: async () => (await import('../../stages/merge/command.js')).mergeCommand,
  },
]
