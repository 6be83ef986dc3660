module nsops.local/logdemo

go 1.22
