#!/usr/bin/env perl
# bench/replay.pl - the pgbench reference of one API request, from PostgreSQL's statement log
# (the benches run the API once with log_statement = 'all'; bench/api-read.sh, bench/config.sh).
#
# Turns the log entries of one request (file $1) into a pgbench script ($2.sql), its variables
# ($2.vars: NUL-separated name=value for -D), the protocol ($2.mode: prepared or extended) and a
# check ($2.check: a pgbench script that runs the same statements once, counting their rows into
# a debug() line). Arguments after $2 are value=name pairs: a parameter bound to that value
# becomes pgbench variable :name (set by the caller's own lines in $2.head, and by -D name=value
# for the check), and must be exactly one parameter.
# With --floor first, the log must hold the pages of one export (one statement text, the first
# page first) and it writes $2.sql instead: the first page's statement with its one LIMIT lifted
# and its values written in as literals, wrapped in COPY (...) TO STDOUT.
# A pair value=name+ (the name ending in '+') lets the value be bound to several parameters (one
# id in each of a request's statements), all of them becoming :name.
use strict;
use warnings;
my $floor = @ARGV && $ARGV[0] eq '--floor' ? shift @ARGV : 0;
my ($log, $out, @vary) = @ARGV;
my %vary = map { split /=/, $_, 2 } @vary;
my %many = map { $_ => 1 } grep { $vary{$_} =~ s/\+$// } keys %vary;
open my $in, '<', $log or die "replay: $log: $!\n";
my @entries; # [pid, severity, message]; continuation lines of a message start with a tab
while (my $line = <$in>) {
    chomp $line;
    if ($line =~ /^\t(.*)$/s && @entries) { $entries[-1][2] .= "\n$1"; next; }
    push @entries, [$1, $2, $3] if $line =~ /^\S+ \S+ \S+ \[(\d+)\] ([A-Z]+):  (.*)$/s;
}
my @stmts;
for my $i (0 .. $#entries) {
    my ($pid, $sev, $msg) = @{$entries[$i]};
    next unless $sev eq 'LOG' && $msg =~ /^execute ([^:]+): (.*)$/s;
    my %st = (name => $1, text => $2, params => {});
    my $d = $i < $#entries && $entries[$i + 1][0] eq $pid && $entries[$i + 1][1] eq 'DETAIL' ? $entries[$i + 1][2] : '';
    if ($d =~ /^parameters: (.*)$/s) {
        my $p = $1;
        while ($p =~ /\G\$(\d+) = (?:NULL|'((?:[^']|'')*)')(?:, |$)/gc) {
            my ($n, $v) = ($1, $2);
            $v =~ s/''/'/g if defined $v;
            $st{params}{$n} = $v;
        }
        die "replay: cannot read the parameters: $p\n" unless (pos($p) // 0) == length $p;
    }
    push @stmts, \%st;
}
die "replay: the request executed no statement (see $log)\n" unless @stmts;
if ($floor) {
    my $st = $stmts[0];
    die "replay: the export ran other statements than its pages (see $log)\n"
        if grep { $_->{text} ne $st->{text} } @stmts;
    my @limits = $st->{text} =~ /\bLIMIT (\d+)\b/g;
    die "replay: the export's page statement has " . scalar(@limits) . " LIMITs; expected one (its page)\n"
        unless @limits == 1;
    (my $bare = $st->{text}) =~ s/::+//g;
    die "replay: the export's statement holds a ':name' that psql would take for a variable\n"
        if $bare =~ /:[A-Za-z0-9_]/;
    (my $all = $st->{text}) =~ s/\s+LIMIT \d+\b//;
    $all =~ s{\$(\d+)}{
        die "replay: \$$1 has no value in the log\n" unless exists $st->{params}{$1};
        my $v = $st->{params}{$1};
        defined $v ? "'" . ($v =~ s/'/''/gr) . "'" : 'NULL'
    }ge;
    open my $sql, '>', "$out.sql" or die;
    print $sql "COPY ($all) TO STDOUT\n";
    printf STDERR "bench:   %d page statement(s), %s, pages of %d; the floor runs the first without its LIMIT\n",
        scalar @stmts, $st->{name} eq '<unnamed>' ? 'unnamed' : "prepared ($st->{name})", $limits[0];
    exit 0;
}
my %seen;
my $named = grep { $_->{name} ne '<unnamed>' } @stmts;
open my $sql, '>', "$out.sql" or die;
open my $vars, '>', "$out.vars" or die;
open my $check, '>', "$out.check" or die;
print $check "\\set total 0\n";
if (open my $head, '<', "$out.head") { print $sql $_ while <$head>; }
for my $s (0 .. $#stmts) {
    my $st = $stmts[$s];
    (my $bare = $st->{text}) =~ s/::+//g;
    die "replay: statement " . ($s + 1) . " holds a ':name' that pgbench would take for a variable\n"
        if $bare =~ /:[A-Za-z0-9_]/;
    my $bench = $st->{text} =~ s{\$(\d+)}{
        my $n = $1;
        die "replay: \$$n has no value in the log\n" unless exists $st->{params}{$n};
        my $v = $st->{params}{$n};
        if (defined $v && exists $vary{$v}) { $seen{$v}{$s . '.' . $n} = 1; ":$vary{$v}" }
        elsif (defined $v) { ":s${s}_p$n" }
        else { ":null_s${s}_p$n" }  # never defined: pgbench binds NULL
    }ger;
    for my $n (sort { $a <=> $b } keys %{$st->{params}}) {
        my $v = $st->{params}{$n};
        print $vars "s${s}_p$n=$v\0" if defined $v && !exists $vary{$v};
    }
    print $sql "$bench;\n";
    print $check "SELECT count(*) AS rows_ FROM ($bench) AS replay \\gset\n\\set total :total + :rows_\n";
    my $uses = () = $st->{text} =~ /\$\d+/g;
    printf STDERR "bench:   statement %d: %s, %d parameters (pgbench binds %d: one per use), %d characters\n",
        $s + 1, $st->{name} eq '<unnamed>' ? 'unnamed (parsed and planned per request)' : "prepared ($st->{name})",
        scalar keys %{$st->{params}}, $uses, length $st->{text};
}
for my $v (keys %vary) {
    my $n = keys %{$seen{$v} // {}};
    die "replay: value $v must be bound to exactly one parameter, found $n\n" unless $n == 1 || ($many{$v} && $n >= 1);
}
print $check "\\set shown debug(:total)\n";
open my $mode, '>', "$out.mode" or die;
print $mode $named == @stmts ? "prepared\n" : "extended\n";
